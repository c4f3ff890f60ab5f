# Source: https://github.com/dask/distributed/blob/40fcd99a8cd41c39071a16a546e93a9298f1b64d/docs/source/actors.rst  (BSD 3-Clause License)
# Kept: the code blocks of sections 'Actors', 'Call Remote Methods' and 'Access Attributes'
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped, each expected-output line a '# -> ' comment, a value the doctest shows passed to displayhook)
from sys import displayhook

class Counter:
    """ A simple class to manage an incrementing counter """
    n = 0

    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1
        return self.n

    def add(self, x):
        self.n += x
        return self.n

from plait.compat.dask.distributed import Client          # Start a Dask Client
client = Client()

future = client.submit(Counter, actor=True)  # Create a Counter on a worker
counter = future.result()                    # Get back a pointer to that object

counter
# <Actor: Counter, key=Counter-1234abcd>

future = counter.increment()                 # Call remote method
future.result()                              # Get back result
# 1

future = counter.add(10)                     # Call remote method
future.result()                              # Get back result
# 11

future = client.submit(Counter, actors=True)

counter = future.result()
displayhook(counter)
# -> <Actor: Counter, key=...>

displayhook(dir(counter))
# -> ['add', 'increment', 'n']

future = counter.increment()  # Immediately returns a BaseActorFuture
displayhook(future.result())  # Block until finished and result arrives
# -> 1

class Counter:
    n = 0   # Recall that we defined our class with `n` as a class variable

    ...

displayhook(counter.n)  # Blocks until finished
# -> 1
