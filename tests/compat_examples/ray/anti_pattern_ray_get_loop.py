# Source: https://github.com/ray-project/ray/blob/0718d5b02581bfef3960d8e37c4d6484f7c368f9/doc/source/ray-core/doc_code/anti_pattern_ray_get_loop.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
# __anti_pattern_start__
import plait.compat.ray as ray

ray.init()


@ray.remote
def f(i):
    return i


# Anti-pattern: no parallelism due to calling ray.get inside of the loop.
sequential_returns = []
for i in range(100):
    sequential_returns.append(ray.get(f.remote(i)))

# Better approach: parallelism because the tasks are executed in parallel.
refs = []
for i in range(100):
    refs.append(f.remote(i))

parallel_returns = ray.get(refs)
# __anti_pattern_end__

assert sequential_returns == parallel_returns
