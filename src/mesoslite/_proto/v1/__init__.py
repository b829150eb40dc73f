"""Generated protobuf and gRPC code for mesoslite.v1."""
