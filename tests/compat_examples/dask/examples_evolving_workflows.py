# Source: https://github.com/dask/dask-examples/blob/03cfcca533fae6647f7df0b1f6b350938168d0a0/applications/evolving-workflows.ipynb  (CC BY-SA 4.0)
# Kept: every code cell but the asyncio version (cells 10 and 12)
# Changed: the import lines only (IPython's %time/%%time dropped, the value a cell shows passed to displayhook, as the notebook displays it)
from sys import displayhook

filenames = ["file.{}.txt".format(i) for i in range(10)]

displayhook(filenames[:3])

import random, time


def parse_file(fn: str) -> list:
    """ Returns a list work items of unknown length """
    time.sleep(random.random())
    return [random.random() for _ in range(random.randint(1, 10))]

def process_item(x: float):
    """ Process each work item """
    time.sleep(random.random() / 4)
    return x + 1

# This takes around 10-20s

results = []

for fn in filenames:
    L = parse_file(fn)
    for x in L:
        out = process_item(x)
        results.append(out)

from plait.compat.dask.distributed import Client

client = Client(processes=False, n_workers=1, threads_per_worker=6)
displayhook(client)

from plait.compat.dask.distributed import as_completed
import operator

lists = client.map(parse_file, filenames, pure=False)
lengths = client.map(len, lists)

mapping = dict(zip(lengths, lists))

futures = []

for future in as_completed(lengths):
    n = future.result()
    L = mapping[future]
    for i in range(n):
        new = client.submit(operator.getitem, L, i, priority=1)
        new = client.submit(process_item, new, priority=1)
        futures.append(new)
        
displayhook(client.gather(futures))

from plait.compat.dask.distributed import get_client, secede, rejoin

def f(fn):
    L = parse_file(fn)
    client = get_client()
    
    futures = client.map(process_item, L, priority=10)
    secede()
    results = client.gather(futures)
    rejoin()
    return results

futures = client.map(f, filenames, pure=False)
results = client.gather(futures)
