# Source: https://github.com/dask/distributed/blob/40fcd99a8cd41c39071a16a546e93a9298f1b64d/docs/source/quickstart.rst  (BSD 3-Clause License)
# Kept: 'Setup Dask.distributed the Easy Way', 'Map and Submit Functions' and 'Gather' (left out: the Hard Way's connection to a scheduler started by hand, and 'Restart')
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped, each expected-output line a '# -> ' comment, a value the doctest shows passed to displayhook)
from sys import displayhook

from plait.compat.dask.distributed import Client
client = Client()  # set up local cluster on your laptop
displayhook(client)
# -> <Client: scheduler="127.0.0.1:8786" processes=8 cores=8>

def square(x):
    return x ** 2

def neg(x):
    return -x

A = client.map(square, range(10))
B = client.map(neg, A)
total = client.submit(sum, B)
displayhook(total.result())
# -> -285

displayhook(total)  # Function hasn't yet completed
# -> <Future: status: waiting, key: sum-58999c52e0fa35c7d7346c098f5085c7>

displayhook(total)  # Function completed, result ready on remote worker
# -> <Future: status: finished, key: sum-58999c52e0fa35c7d7346c098f5085c7>

displayhook(total.result())  # result for single future
# -> -285
displayhook(client.gather(A))  # gather for many futures
# -> [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
