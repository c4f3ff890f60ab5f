# Source: https://github.com/dask/distributed/blob/40fcd99a8cd41c39071a16a546e93a9298f1b64d/docs/source/task-launch.rst  (BSD 3-Clause License)
# Kept: the example of section 'dask.delayed'
# Changed: the import lines only
from plait.compat.dask.distributed import Client
from plait.compat.dask import delayed, compute


@delayed
def fib(n):
    if n < 2:
        return n
    # We can use dask.delayed and dask.compute to launch
    # computation from within tasks
    a = fib(n - 1)  # these calls are delayed
    b = fib(n - 2)
    a, b = compute(a, b)  # execute both in parallel
    return a + b

if __name__ == "__main__":
    # these features require the dask.distributed scheduler
    client = Client()

    result = fib(10).compute()
    print(result)  # prints "55"
