# Source: https://github.com/ray-project/ray/blob/02421c79baf9b8da7d4bb1fbbbd175c5d1019a8a/python/ray/util/actor_pool.py  (Apache License 2.0)
# Snippets kept: docstring example of ActorPool.pop_idle
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped; each expected-output line turned into a '# -> ...' comment)
import plait.compat.ray as ray
from plait.compat.ray.util import ActorPool
@ray.remote
class Actor:
    def double(self, v):
        return 2 * v
a1 = Actor.remote()
pool = ActorPool([a1])
pool.submit(lambda a, v: a.double.remote(v), 1)
assert pool.pop_idle() is None
assert pool.get_next() == 2
assert pool.pop_idle() == a1
