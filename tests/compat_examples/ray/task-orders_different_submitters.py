# Source: https://github.com/ray-project/ray/blob/a1ac92350abd4ba1caa4852ef36c9bfaba59a25e/doc/source/ray-core/actors/task-orders.rst  (Apache License 2.0)
# Snippets kept: code-block 2 of 3 (Synchronous, Single-Threaded Actor: different submitters)
# Changed: the import lines only (code-block extracted from the .rst and dedented; code otherwise verbatim)
import time
import plait.compat.ray as ray

@ray.remote
class Counter:
    def __init__(self):
        self.value = 0

    def add(self, addition):
        self.value += addition
        return self.value

counter = Counter.remote()

# Submit task from a worker
@ray.remote
def submitter(value):
    return ray.get(counter.add.remote(value))

# Simulate delayed result resolution.
@ray.remote
def delayed_resolution(value):
    time.sleep(5)
    return value

# Submit tasks from different workers, with
# the first submitted task waiting for
# dependency resolution.
value0 = submitter.remote(delayed_resolution.remote(1))
value1 = submitter.remote(2)

# Output: 3. The first submitted task is executed later.
print(ray.get(value0))
# Output: 2. The later submitted task is executed first.
print(ray.get(value1))
