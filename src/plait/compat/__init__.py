"""Programs written for other systems' APIs, run on plait by changing one import line.

``import plait.compat.ray as ray`` maps the Ray Core API onto plait's tasks,
actors and futures. What a module cannot honour raises ``plait.NotSupported``
naming the feature and plait's equivalent: never a silent difference.
"""
