"""Engines: each implements ``plait.runtime.engine.Engine``; imported only when chosen."""
