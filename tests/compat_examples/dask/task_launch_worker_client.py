# Source: https://github.com/dask/distributed/blob/40fcd99a8cd41c39071a16a546e93a9298f1b64d/docs/source/task-launch.rst  (BSD 3-Clause License)
# Kept: the example of section 'Connection with context manager'
# Changed: the import lines only
from plait.compat.dask.distributed import Client, worker_client


def fib(n):
    if n < 2:
        return n
    with worker_client() as client:
        a_future = client.submit(fib, n - 1)
        b_future = client.submit(fib, n - 2)
        a, b = client.gather([a_future, b_future])
    return a + b

if __name__ == "__main__":
    client = Client()
    future = client.submit(fib, 10)
    result = future.result()
    print(result)  # prints "55"
