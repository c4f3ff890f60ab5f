# Source: https://github.com/dask/dask/blob/817e5ffc1208346630b111860571024b0c6ec9bd/docs/source/futures.rst  (BSD 3-Clause License)
# Kept: the three snippets of section 'Actors'
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped, each expected-output line a '# -> ' comment, a value the doctest shows passed to displayhook)
from sys import displayhook

class Counter:
    n = 0

    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1
        return self.n

from plait.compat.dask.distributed import Client

if __name__ == '__main__':
    client = Client()

    future = client.submit(Counter, actor=True)
    counter = future.result()

displayhook(counter)
# -> <Actor: Counter, key=Counter-afa1cdfb6b4761e616fa2cfab42398c8>

future = counter.increment()
displayhook(future)
# -> <ActorFuture>

displayhook(future.result())
# -> 1

displayhook(counter.n)
# -> 1
