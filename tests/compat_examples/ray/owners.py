# Source: https://github.com/ray-project/ray/blob/4192d7c621516d30e87de8f1e09af710a9482c0d/doc/source/ray-core/doc_code/owners.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
# ruff: noqa
# __owners_begin__
import plait.compat.ray as ray
import numpy as np


@ray.remote
def large_array():
    return np.zeros(int(1e5))


x = ray.put(1)  # The driver owns x and also creates the value of x.

y = large_array.remote()
# The driver is the owner of y, even though the value may be stored somewhere else.
# If the node that stores the value of y dies, Ray will automatically recover
# it by re-executing the large_array task.
# If the driver dies, anyone still using y will receive an OwnerDiedError.
# __owners_end__
