"""The embedded local engine: a driver-side scheduler and one warm worker process per core."""
