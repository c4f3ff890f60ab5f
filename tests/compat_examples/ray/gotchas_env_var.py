# Source: https://github.com/ray-project/ray/blob/874d78917c531ce0ee14b25c0dca893f89f9b6d6/doc/source/ray-core/doc_code/gotchas.py  (Apache License 2.0)
# Snippets kept: env_var, plus the unmarked `ray.shutdown()` line after it (dropped: env_var_fix [runtime_env])
# Changed: the import lines only
# flake8: noqa
# __env_var_start__
import plait.compat.ray as ray
import os
ray.init()

@ray.remote
def myfunc():
    myenv = os.environ.get("FOO")
    print(f"myenv is {myenv}")
    return 1

ray.get(myfunc.remote())
# this prints: "myenv is None"
# __env_var_end__
ray.shutdown()


