# Source: https://github.com/dask/dask/blob/817e5ffc1208346630b111860571024b0c6ec9bd/docs/source/delayed.rst  (BSD 3-Clause License)
# Kept: the code block of section 'Decorator'
# Changed: the import lines only
import plait.compat.dask as dask

@dask.delayed
def inc(x):
    return x + 1

@dask.delayed
def double(x):
    return x * 2

@dask.delayed
def add(x, y):
    return x + y

data = [1, 2, 3, 4, 5]

output = []
for x in data:
    a = inc(x)
    b = double(x)
    c = add(a, b)
    output.append(c)

total = dask.delayed(sum)(output)
