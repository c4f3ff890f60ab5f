"""The task runtime: futures, tasks, actors and the Engine protocol they lower to."""
