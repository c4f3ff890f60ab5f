# Source: https://github.com/ray-project/ray/blob/a1ac92350abd4ba1caa4852ef36c9bfaba59a25e/doc/source/ray-core/actors/task-orders.rst  (Apache License 2.0)
# Snippets kept: code-block 1 of 3 (Synchronous, Single-Threaded Actor: same submitter)
# Changed: the import lines only (code-block extracted from the .rst and dedented; code otherwise verbatim)
import plait.compat.ray as ray

@ray.remote
class Counter:
    def __init__(self):
        self.value = 0

    def add(self, addition):
        self.value += addition
        return self.value

counter = Counter.remote()

# For tasks from the same submitter,
# they are executed according to submission order.
value0 = counter.add.remote(1)
value1 = counter.add.remote(2)

# Output: 1. The first submitted task is executed first.
print(ray.get(value0))
# Output: 3. The later submitted task is executed later.
print(ray.get(value1))
