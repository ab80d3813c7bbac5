"""kombu's filesystem transport (the embedded broker), with messages written atomically.

kombu creates a message's file under its final name, then locks and writes it: a worker listing
the folder in between reads an empty file, fails to decode it and stops ("Unrecoverable error:
JSONDecodeError"), leaving the run queued. Here a message is written under a name no consumer
takes (a leading dot), then renamed to its final one, which a reader sees whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """Put ``payload`` onto ``queue``: written in full, then renamed into the queue."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
