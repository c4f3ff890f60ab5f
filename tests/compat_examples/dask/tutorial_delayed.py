# Source: https://github.com/dask/dask-tutorial/blob/3157ed8b751d04da8e1a09bc92e38f0d386423db/03_dask.delayed.ipynb  (BSD 3-Clause License)
# Kept: code cells 2-30 and 55 but the pictures (cells 15 and 31: visualize) and the empty exercise cells; left out: the pandas exercise (cells 35-52), whose data prep.py downloads
# Changed: the import lines only (IPython's %time/%%time dropped, the value a cell shows passed to displayhook, as the notebook displays it)
from sys import displayhook

from plait.compat.dask.distributed import Client

client = Client(n_workers=4)

from time import sleep


def inc(x):
    sleep(1)
    return x + 1


def add(x, y):
    sleep(1)
    return x + y

# This takes three seconds to run because we call each
# function sequentially, one after the other

x = inc(1)
y = inc(2)
z = add(x, y)

import plait.compat.dask as dask


@dask.delayed
def inc(x):
    sleep(1)
    return x + 1


@dask.delayed
def add(x, y):
    sleep(1)
    return x + y

# This runs immediately, all it does is build a graph

x = inc(1)
y = inc(2)
z = add(x, y)

# This actually runs our computation using a local thread pool

displayhook(z.compute())

displayhook(z)

data = [1, 2, 3, 4, 5, 6, 7, 8]

# Sequential code


def inc(x):
    sleep(1)
    return x + 1


results = []
for x in data:
    y = inc(x)
    results.append(y)

total = sum(results)

displayhook(total)

@dask.delayed
def inc(x):
    sleep(1)
    return x + 1


results = []
for x in data:
    y = inc(x)
    results.append(y)

total = sum(results)
print("Before computing:", total)  # Let's see what type of thing total is
result = total.compute()
print("After computing :", result)  # After it's computed

def double(x):
    sleep(1)
    return 2 * x


def is_even(x):
    return not x % 2


data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]

# Sequential code

results = []
for x in data:
    if is_even(x):
        y = double(x)
    else:
        y = inc(x)
    results.append(y)

total = sum(results)
print(total)

@dask.delayed
def double(x):
    sleep(1)
    return 2 * x


results = []
for x in data:
    if is_even(x):  # even
        y = double(x)
    else:  # odd
        y = inc(x)
    results.append(y)

total = sum(results)

displayhook(total.compute())

displayhook(client.close())
