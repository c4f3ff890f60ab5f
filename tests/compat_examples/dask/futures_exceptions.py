# Source: https://github.com/dask/dask/blob/817e5ffc1208346630b111860571024b0c6ec9bd/docs/source/futures.rst  (BSD 3-Clause License)
# Kept: section 'Start Dask Client' and the first snippet of 'References, Cancellation, and Exceptions' that fails (the program ends with the remote ZeroDivisionError)
# Changed: the import lines only (doctest prompts '>>> '/'... ' stripped, each expected-output line a '# -> ' comment, a value the doctest shows passed to displayhook)
from sys import displayhook

from plait.compat.dask.distributed import Client

client = Client()  # start local workers as processes
# or
client = Client(processes=False)  # start local workers as threads

def inc(x):
    return x + 1

def add(x, y):
    return x + y

a = client.submit(inc, 10)  # calls inc(10) in background thread or process
b = client.submit(inc, 20)  # calls inc(20) in background thread or process

def div(x, y):
    return x / y

a = client.submit(div, 1, 0)  # 1 / 0 raises a ZeroDivisionError
displayhook(a)
# -> <Future: status: error, key: div-3601743182196fb56339e584a2bf1039>

displayhook(a.result())
# ->       1 def div(x, y):
# -> ----> 2     return x / y

# -> ZeroDivisionError: division by zero
