# Source: https://github.com/ray-project/ray/blob/1ace89f963a032aa5c88a0d0ab16dee72ec50691/doc/source/ray-core/doc_code/anti_pattern_redefine_task_actor_loop.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
# __anti_pattern_start__
import plait.compat.ray as ray

ray.init()

outputs = []
for i in range(10):

    @ray.remote
    def double(i):
        return i * 2

    outputs.append(double.remote(i))
outputs = ray.get(outputs)
# The double remote function is pickled and uploaded 10 times.
# __anti_pattern_end__

assert outputs == [i * 2 for i in range(10)]


# __better_approach_start__
@ray.remote
def double(i):
    return i * 2


outputs = []
for i in range(10):
    outputs.append(double.remote(i))
outputs = ray.get(outputs)
# The double remote function is pickled and uploaded 1 time.
# __better_approach_end__

assert outputs == [i * 2 for i in range(10)]
