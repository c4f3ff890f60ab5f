# Source: https://github.com/ray-project/ray/blob/8884c7feba336634cfc919399a401e11e7514664/doc/source/ray-core/doc_code/actor-repr.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
import plait.compat.ray as ray


@ray.remote
class MyActor:
    def __init__(self, index):
        self.index = index

    def foo(self):
        print("hello there")

    def __repr__(self):
        return f"MyActor(index={self.index})"


a = MyActor.remote(1)
b = MyActor.remote(2)
ray.get(a.foo.remote())
ray.get(b.foo.remote())
