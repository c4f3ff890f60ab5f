# Source: https://github.com/ray-project/ray/blob/52a38e8a854e605da6e6cec7274237d484777839/doc/source/ray-core/doc_code/actor-pool.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
import plait.compat.ray as ray
from plait.compat.ray.util import ActorPool


@ray.remote
class Actor:
    def double(self, n):
        return n * 2


a1, a2 = Actor.remote(), Actor.remote()
pool = ActorPool([a1, a2])

# pool.map(..) returns a Python generator object ActorPool.map
gen = pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])
print([v for v in gen])
# [2, 4, 6, 8]
