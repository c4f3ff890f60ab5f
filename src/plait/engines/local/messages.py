"""The messages between the local engine's driver and its workers.

A message is a tuple: its kind (one of the small ints below), then its fields
in the order the tables give. Frames (``wire.pack``) carry lists of messages,
so a burst of results travels in one write. Tuples, not classes: a message is
built and read once per call, and pickling a tuple of plain values costs a
fraction of pickling an object.

From a worker to the driver:

================  =============================================  ==========================================
kind              fields                                         meaning
================  =============================================  ==========================================
``HELLO``                                                        the worker is up: a task may have started
``MAPS``          ``[(oid, +1 or -1)]``                          store files mapped and let go (first in
                                                                 its frame, before any ``RELEASE``)
``DONE``          ``tid, ok, payload, size, contained, start,    a call ended: its result (or pickled
                  end``                                          exception), the futures inside it, its span
``START``         ``tid``                                        a call with a timeout started
``FN``            ``key, blob, options, name``                   a task function, before its first ``SUBMIT``
``SUBMIT``        ``tid, key, payload, size, deps, held``        a task call made in the worker (``held``:
                                                                 futures passed as themselves)
``PUT``           ``oid, payload, size, contained``              a ``put`` made in the worker
``ADDREF``        ``oid``                                        a future arrived here inside a value
``RELEASE``       ``[oid]``                                      futures dropped here
``ACALL``         ``tid, actor_id, method, payload, size,``       an actor call made in the worker
                  ``deps, held``
``AKILL``         ``actor_id``                                   ``plait.kill`` of an actor, from here
``RETURN``        ``[tid]``                                      queued, unstarted tasks handed back
``WAIT``          ``req, ids, needed, timeout, returned``        request: wait until ``needed`` of ``ids``
                                                                 are done (handing back ``returned``)
``CANCEL``        ``req, oid, force``                            request: cancel a call
``CREATE_ACTOR``  ``req, blob``                                  request: create the pickled actor
``GET_ACTOR``     ``req, name``                                  request: the handle of a named actor
``NOTIFY``        ``oid``                                        a future here got a done-callback: say
                                                                 when ``oid`` is done (``NOTICE``)
================  =============================================  ==========================================

From the driver to a worker:

==========  ==========================  =================================================
kind        fields                      meaning
==========  ==========================  =================================================
``RUN``     ``functions, items``        work items to run in order, and the functions
                                        they need (``[(fid, blob, options, name)]``: a
                                        call's own options, pickled by value)
``REPLY``   ``req, answer``             the answer to request ``req``
``BYE``                                 the driver is stopping this worker (shutdown, or
                                        an extra worker retired): exit. An end of stream
                                        without it means the driver died: the worker
                                        removes the store
``STOP``    ``tid``                     cancel the running (or queued) call ``tid`` of
                                        this worker's async actor: its coroutine is
                                        cancelled, and the actor goes on
``NOTICE``  ``[(oid, ok, payload)]``    outcomes a ``NOTIFY`` asked for, on the worker's
                                        second socket (its *notice channel*), which a
                                        thread of the worker reads while its main thread
                                        runs a task: a done-callback in a task runs when
                                        the call ends, not when the task next waits
==========  ==========================  =================================================

Answers: to ``WAIT``, ``(RESULTS, [(oid, ok, payload)])``, or ``(HELP, functions,
items)`` when nobody runs the awaited tasks yet (the worker runs them, then asks
again); to ``CANCEL``, a bool; to ``CREATE_ACTOR``, ``("ok", handle)`` or
``("error", exception)``; to ``GET_ACTOR``, a handle or None.

A work item is ``(kind, tid, what, args, deps, gpus, timed, short)``: ``kind`` is
``TASK`` (``what``: a function id, or ``(function id, output ids)`` for a call
with ``num_returns``: the worker stores each item of its result under its own
id, and ``DONE``'s payload is then ``[(payload, size, contained)]``, one per
item), ``ACTOR_CALL`` (a method name) or
``ACTOR_INIT`` (the pickled actor class and how many calls may run at once);
``deps`` maps each dependency's id to its payload; ``gpus`` are the GPU ids to
make visible, ``timed`` says to send ``START``, ``short`` that the call's task is
measured short (the worker sends the results it has before it starts one that is
not).
"""

from __future__ import annotations

# worker -> driver
HELLO, MAPS, DONE, START, FN, SUBMIT, PUT, ADDREF, RELEASE, ACALL, AKILL, RETURN = range(12)
WAIT, CANCEL, CREATE_ACTOR, GET_ACTOR = range(12, 16)  # requests: each gets a REPLY
# driver -> worker
RUN, REPLY, BYE = 16, 17, 20
NOTIFY, NOTICE = 21, 22  # worker -> driver; driver -> worker, on the notice channel
STOP = 23  # driver -> worker
# answers to WAIT
RESULTS, HELP = range(18, 20)
# kinds of work items (OUTPUT: an item of a call with num_returns, kept in the driver only)
TASK, ACTOR_CALL, ACTOR_INIT, OUTPUT = 0, 1, 2, 3
