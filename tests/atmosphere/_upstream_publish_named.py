"""Run by upstream atdata 0.7.0b1's Python: publish a versioned, split dataset with labels.

Usage: python _upstream_publish_named.py PDS_URL HANDLE PASSWORD NAME
Publishes schema UpRow 1.0.0, then NAME as two blob-stored entries (splits train: 5 samples,
test: 3 samples) with upstream's structured metadata (version 2.0.0, a custom key), and the label
NAME@2.0.0 -> the train entry, as upstream's Index.insert_dataset does. Prints the entry URIs.
"""

import io
import sys

import numpy as np
import webdataset as wds
from atproto import Client
from numpy.typing import NDArray

import atdata
from atdata.atmosphere import Atmosphere, DatasetPublisher, LabelPublisher, SchemaPublisher


@atdata.packable
class UpRow:
    idx: int
    name: str
    vec: NDArray


url, handle, password, name = sys.argv[1:5]
sdk = Client(base_url=url)
sdk.login(handle, password, fetch_bsky_profile=False)
client = Atmosphere(base_url=url, _client=sdk)
# upstream's own login() fetches an app.bsky profile, which a bare PDS does not serve
client._session = {"did": sdk._session.did, "handle": sdk._session.handle}
schema_uri = SchemaPublisher(client).publish(UpRow, version="1.0.0")


def tar(start, n):
    buf = io.BytesIO()
    with wds.TarWriter(buf) as w:
        for i in range(start, start + n):
            s = UpRow(idx=i, name=f"u{i}", vec=np.arange(3, dtype="f4") * i)
            w.write(
                {"__key__": f"{i:04d}", **{k: v for k, v in s.as_wds.items() if k != "__key__"}}
            )
    return buf.getvalue()


pub = DatasetPublisher(client)
meta = {"version": "2.0.0", "source_uri": "https://example.org/raw", "note": "from upstream"}
train = pub.publish_with_blobs(
    [tar(0, 5)], schema_uri, name=name, metadata={**meta, "split": "train"}
)
test = pub.publish_with_blobs(
    [tar(100, 3)], schema_uri, name=name, metadata={**meta, "split": "test"}
)
LabelPublisher(client).publish(name=name, dataset_uri=str(train), version="2.0.0")
print(train)
print(test)
