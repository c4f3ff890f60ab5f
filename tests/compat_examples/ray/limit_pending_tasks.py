# Source: https://github.com/ray-project/ray/blob/8884c7feba336634cfc919399a401e11e7514664/doc/source/ray-core/doc_code/limit_pending_tasks.py  (Apache License 2.0)
# Snippets kept: all
# Changed: the import lines only
# __without_backpressure_start__
import plait.compat.ray as ray

ray.init()


@ray.remote
class Actor:
    async def heavy_compute(self):
        # taking a long time...
        # await asyncio.sleep(5)
        return


actor = Actor.remote()

NUM_TASKS = 1000
result_refs = []
# When NUM_TASKS is large enough, this will eventually OOM.
for _ in range(NUM_TASKS):
    result_refs.append(actor.heavy_compute.remote())
ray.get(result_refs)
# __without_backpressure_end__

# __with_backpressure_start__
MAX_NUM_PENDING_TASKS = 100
result_refs = []
for _ in range(NUM_TASKS):
    if len(result_refs) > MAX_NUM_PENDING_TASKS:
        # update result_refs to only
        # track the remaining tasks.
        ready_refs, result_refs = ray.wait(result_refs, num_returns=1)
        ray.get(ready_refs)

    result_refs.append(actor.heavy_compute.remote())

ray.get(result_refs)
# __with_backpressure_end__
