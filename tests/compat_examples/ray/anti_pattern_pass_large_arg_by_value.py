# Source: https://github.com/ray-project/ray/blob/26d1168f94421f5f499279f72fbb9942b129784e/doc/source/ray-core/doc_code/anti_pattern_pass_large_arg_by_value.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
# __anti_pattern_start__
import plait.compat.ray as ray
import numpy as np

ray.init()

@ray.remote
def func(large_arg, i):
    return len(large_arg) + i

large_arg = np.zeros(1024 * 1024)

# 10 copies of large_arg is stored in the object store
outputs = ray.get([func.remote(large_arg, i) for i in range(10)])
# __anti_pattern_end__

# __better_approach_start__
# 1 copy of large_arg is stored in the object store
large_arg_ref = ray.put(large_arg)
outputs = ray.get([func.remote(large_arg_ref, i) for i in range(10)])
# __better_approach_end__
