# Source: https://github.com/ray-project/ray/blob/058535cbe66082716dcb6b82ca479ea1425013d3/doc/source/ray-core/doc_code/obj_ref.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
import plait.compat.ray as ray


@ray.remote
def echo_and_get(x_list):  # List[ObjectRef]
    """This function prints its input values to stdout."""
    print("args:", x_list)
    print("values:", ray.get(x_list))


# Put three values into Ray's object store.
a, b, c = ray.put(1), ray.put(2), ray.put(3)

# Passing an object as a nested argument to `echo_and_get`. Ray does not
# de-reference nested args, so `echo_and_get` sees the references.
echo_and_get.remote([a, b, c])
# -> prints args: [ObjectRef(...), ObjectRef(...), ObjectRef(...)]
#           values: [1, 2, 3]
