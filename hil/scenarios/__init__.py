"""The shipped scenario sets (TOML): smoke, ibeta, lux-sweep, redteam (docs/hil.md)."""
