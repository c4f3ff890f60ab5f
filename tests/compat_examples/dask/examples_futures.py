# Source: https://github.com/dask/dask-examples/blob/03cfcca533fae6647f7df0b1f6b350938168d0a0/futures.ipynb  (CC BY-SA 4.0)
# Kept: every code cell
# Changed: the import lines only (IPython's %time/%%time dropped, the value a cell shows passed to displayhook, as the notebook displays it)
from sys import displayhook

from plait.compat.dask.distributed import Client, progress
client = Client(threads_per_worker=4, n_workers=1)
displayhook(client)

import time
import random

def inc(x):
    time.sleep(random.random())
    return x + 1

def double(x):
    time.sleep(random.random())
    return 2 * x
    
def add(x, y):
    time.sleep(random.random())
    return x + y 

displayhook(inc(1))

future = client.submit(inc, 1)  # returns immediately with pending future
displayhook(future)

displayhook(future)  # scheduler and client talk constantly

displayhook(future.result())

x = client.submit(inc, 1)
y = client.submit(double, 2)
z = client.submit(add, x, y)
displayhook(z)

displayhook(z.result())

zs = []

for i in range(256):
    x = client.submit(inc, i)     # x = inc(i)
    y = client.submit(double, x)  # y = inc(x)
    z = client.submit(add, x, y)  # z = inc(y)
    zs.append(z)

total = client.submit(sum, zs)

displayhook(client.cluster.scale(10))  # ask for ten 4-thread workers

L = zs
while len(L) > 1:
    new_L = []
    for i in range(0, len(L), 2):
        future = client.submit(add, L[i], L[i + 1])  # add neighbors
        new_L.append(future)
    L = new_L                                   # swap old list for new

del future, L, new_L, total  # clear out some old work

from plait.compat.dask.distributed import as_completed

zs = client.map(inc, zs)
seq = as_completed(zs)

while seq.count() > 1:  # at least two futures left
    a = next(seq)
    b = next(seq)
    new = client.submit(add, a, b, priority=1)  # add them together
    seq.add(new)                                # add new future back into loop
