# Source: https://github.com/dask/dask-tutorial/blob/3157ed8b751d04da8e1a09bc92e38f0d386423db/05_futures.ipynb  (BSD 3-Clause License)
# Kept: every code cell but 31-34 (Future.status, Future.retry)
# Changed: the import lines only (IPython's %time/%%time dropped, the value a cell shows passed to displayhook, as the notebook displays it)
from sys import displayhook

from plait.compat.dask.distributed import Client

client = Client(n_workers=4)
displayhook(client)

from time import sleep


def inc(x):
    sleep(1)
    return x + 1


def double(x):
    sleep(2)
    return 2 * x


def add(x, y):
    sleep(1)
    return x + y

displayhook(inc(1))

future = client.submit(inc, 1)  # returns immediately with pending future
displayhook(future)

displayhook(future)

displayhook(future.result())

import plait.compat.dask as dask


@dask.delayed
def inc(x):
    sleep(1)
    return x + 1


@dask.delayed
def add(x, y):
    sleep(1)
    return x + y


x = inc(1)
y = inc(2)
z = add(x, y)

# notice the difference from z.compute()
# notice that this cell completes immediately
future = client.compute(z)
displayhook(future)

displayhook(future.result())  # waits until result is ready

def inc(x):
    sleep(1)
    return x + 1


future_x = client.submit(inc, 1)
future_y = client.submit(inc, 2)
future_z = client.submit(sum, [future_x, future_y])
displayhook(future_z)

displayhook(future_z.result())  # waits until result is ready

from random import random


def flaky_inc(i):
    if random() < 0.2:
        raise ValueError("You hit the error!")
    return i + 1

futures = client.map(flaky_inc, range(10))

futures = client.map(flaky_inc, range(10), retries=5, pure=False)
future_z = client.submit(sum, futures)
displayhook(future_z.result())
