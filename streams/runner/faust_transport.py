"""faust's aiokafka transport with a short fetch wait.

faust builds its worker consumer with fetch_max_wait_ms=1500 and no setting to change it. A broker may hold a
fetch that long when some of the requested partitions have nothing new (measured with the tansu broker: a bare
aiokafka consumer reading 30,000 records with a 25 ms pause per 500 took 4.2 s at 1500 ms, with 1 s stalls,
and 1.7 s at 100 ms). While the worker is behind, every stall is a second in which nothing is folded; when it
is caught up, a shorter wait only means more (empty) fetch round trips, which cost the broker little.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as driver

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher; faust passes 1500 to the constructor
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    """Give it to a faust.App (`app.transport = Transport(app.conf.broker_consumer, app)`) before its topics."""

    Consumer = _Consumer
