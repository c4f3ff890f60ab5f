# Source: https://github.com/dask/dask-examples/blob/03cfcca533fae6647f7df0b1f6b350938168d0a0/delayed.ipynb  (CC BY-SA 4.0)
# Kept: every code cell but the picture (cell 13: visualize)
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

def dec(x):
    time.sleep(random.random())
    return x - 1
    
def add(x, y):
    time.sleep(random.random())
    return x + y 

x = inc(1)
y = dec(2)
z = add(x, y)
displayhook(z)

import plait.compat.dask as dask
inc = dask.delayed(inc)
dec = dask.delayed(dec)
add = dask.delayed(add)

x = inc(1)
y = dec(2)
z = add(x, y)
displayhook(z)

displayhook(z.compute())

zs = []

for i in range(256):
    x = inc(i)
    y = dec(x)
    z = add(x, y)
    zs.append(z)

zs = dask.persist(*zs)  # trigger computation in the background

displayhook(client.cluster.scale(10))  # ask for ten 4-thread workers

L = zs
while len(L) > 1:
    new_L = []
    for i in range(0, len(L), 2):
        lazy = add(L[i], L[i + 1])  # add neighbors
        new_L.append(lazy)
    L = new_L                       # swap old list for new

displayhook(dask.compute(L))
