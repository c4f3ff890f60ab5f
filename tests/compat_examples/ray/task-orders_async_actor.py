# Source: https://github.com/ray-project/ray/blob/a1ac92350abd4ba1caa4852ef36c9bfaba59a25e/doc/source/ray-core/actors/task-orders.rst  (Apache License 2.0)
# Snippets kept: code-block 3 of 3 (Asynchronous or Threaded Actor)
# Changed: the import lines only (code-block extracted from the .rst and dedented; code otherwise verbatim)
import time
import plait.compat.ray as ray

@ray.remote
class AsyncCounter:
    def __init__(self):
        self.value = 0

    async def add(self, addition):
        self.value += addition
        return self.value

counter = AsyncCounter.remote()

# Simulate delayed result resolution.
@ray.remote
def delayed_resolution(value):
    time.sleep(5)
    return value

# Submit tasks from the driver, with
# the first submitted task waiting for
# dependency resolution.
value0 = counter.add.remote(delayed_resolution.remote(1))
value1 = counter.add.remote(2)

# Output: 3. The first submitted task is executed later.
print(ray.get(value0))
# Output: 2. The later submitted task is executed first.
print(ray.get(value1))
