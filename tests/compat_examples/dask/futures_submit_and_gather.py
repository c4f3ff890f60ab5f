# Source: https://github.com/dask/dask/blob/817e5ffc1208346630b111860571024b0c6ec9bd/docs/source/futures.rst  (BSD 3-Clause License)
# Kept: sections 'Start Dask Client', 'Submit Tasks' and 'Move Data' but the snippets that read a csv file the page does not give
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped, each expected-output line a '# -> ' comment, a value the doctest shows passed to displayhook)
from sys import displayhook

from plait.compat.dask.distributed import Client

client = Client()  # start local workers as processes
# or
client = Client(processes=False)  # start local workers as threads

def inc(x):
    return x + 1

def add(x, y):
    return x + y

a = client.submit(inc, 10)  # calls inc(10) in background thread or process
b = client.submit(inc, 20)  # calls inc(20) in background thread or process

displayhook(a)
# -> <Future: status: pending, key: inc-b8aaf26b99466a7a1980efa1ade6701d>

displayhook(a)
# -> <Future: status: finished, type: int, key: inc-b8aaf26b99466a7a1980efa1ade6701d>

displayhook(a.result())  # blocks until task completes and data arrives
# -> 11

c = client.submit(add, a, b)  # calls add on the results of a and b

futures = client.map(inc, range(1000))

displayhook(c.result())
# -> 32

# results = [future.result() for future in futures]
results = client.gather(futures)  # this can be faster

displayhook(client.scatter([1, 2, 3]))
# -> [<Future: status: finished, type: int, key: c0a8a20f903a4915b94db8de3ea63195>,
# ->  <Future: status: finished, type: int, key: 58e78e1b34eb49a68c65b54815d1b158>,
# ->  <Future: status: finished, type: int, key: d3395e15f605bc35ab1bac6341a285e2>]
