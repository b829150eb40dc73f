"""The master daemon: bookkeeping core, registry, gRPC servicers and the actor that ties them."""
