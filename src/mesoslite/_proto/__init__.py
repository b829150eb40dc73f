"""Generated code (never edited by hand); see scripts/gen_protos.py."""
