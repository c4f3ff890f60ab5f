"""Tools around the runtime: timeline traces, progress bars, the command line."""
