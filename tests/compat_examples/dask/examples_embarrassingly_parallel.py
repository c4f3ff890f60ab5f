# Source: https://github.com/dask/dask-examples/blob/03cfcca533fae6647f7df0b1f6b350938168d0a0/applications/embarrassingly-parallel.ipynb  (CC BY-SA 4.0)
# Kept: every code cell but the plot (cell 41), the csv written to /tmp (cell 43) and the dask.bag version (cells 45-48)
# Changed: the import lines only (IPython's %time/%%time dropped, the value a cell shows passed to displayhook, as the notebook displays it)
from sys import displayhook

from plait.compat.dask.distributed import Client, progress
client = Client(threads_per_worker=4, n_workers=1)
displayhook(client)

import time
import random

def costly_simulation(list_param):
    time.sleep(random.random())
    return sum(list_param)

displayhook(costly_simulation([1, 2, 3, 4]))

import pandas as pd
import numpy as np

input_params = pd.DataFrame(np.random.random(size=(500, 4)),
                            columns=['param_a', 'param_b', 'param_c', 'param_d'])
displayhook(input_params.head())

results = []

for parameters in input_params.values[:10]:
    result = costly_simulation(parameters)
    results.append(result)

displayhook(results)

import plait.compat.dask as dask
lazy_results = []

for parameters in input_params.values[:10]:
    lazy_result = dask.delayed(costly_simulation)(parameters)
    lazy_results.append(lazy_result)

displayhook(lazy_results[0])

displayhook(dask.compute(*lazy_results))

import plait.compat.dask as dask
lazy_results = []

for parameters in input_params.values:
    lazy_result = dask.delayed(costly_simulation)(parameters)
    lazy_results.append(lazy_result)
    
futures = dask.persist(*lazy_results)  # trigger computation in the background

displayhook(client.cluster.scale(10))  # ask for ten 4-thread workers

results = dask.compute(*futures)
displayhook(results[:5])

futures = []
for parameters in input_params.values:
    future = client.submit(costly_simulation, parameters)
    futures.append(future)

results = client.gather(futures)
displayhook(results[:5])

futures = client.map(costly_simulation, input_params.values)

results = client.gather(futures)
displayhook(len(results))

print(results[0])

output = input_params.copy()
output['result'] = pd.Series(results, index=output.index)
displayhook(output.sample(5))

displayhook(output['result'].mean())
