# Source: https://github.com/ray-project/ray/blob/c3f1f1b68ed6b042fda66e7fa74a43ad1e71bdbd/doc/source/ray-core/doc_code/anti_pattern_ray_get_ray_wait_async.py  (Apache License 2.0)
# Snippets kept: anti_pattern (dropped: better_approach [awaits ObjectRefs directly in driver asyncio code])
# Changed: the import lines only
# __anti_pattern_start__
import plait.compat.ray as ray
import time
import asyncio


@ray.remote
def f(x):
    time.sleep(1)
    return x


async def bad():
    o1 = f.remote(1)
    o2 = f.remote(2)
    o3 = f.remote(3)
    # These are blocking calls that block
    # the entire event loop.
    print(f"o1 is {ray.get(o1)}")
    print(f"o2 is {ray.get([o2])[0]}")
    ray.wait([o3])
    print("o3 is ready")


asyncio.run(bad())
# __anti_pattern_end__


