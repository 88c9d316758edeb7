"""Run by upstream atdata 0.7.0b1's Python: publish a schema and a blob-stored dataset to a PDS.

Usage: python _upstream_publish.py PDS_URL HANDLE PASSWORD  -> prints the entry URI.
"""

import io
import sys

import numpy as np
import webdataset as wds
from atproto import Client
from numpy.typing import NDArray

import atdata
from atdata.atmosphere import Atmosphere, DatasetPublisher, SchemaPublisher


@atdata.packable
class UpRow:
    idx: int
    name: str
    vec: NDArray


url, handle, password = sys.argv[1:4]
sdk = Client(base_url=url)
sdk.login(handle, password, fetch_bsky_profile=False)
client = Atmosphere(base_url=url, _client=sdk)
# upstream's own login() fetches an app.bsky profile, which a bare PDS does not serve
client._session = {"did": sdk._session.did, "handle": sdk._session.handle}
schema_uri = SchemaPublisher(client).publish(UpRow, version="1.0.0", description="from upstream")
buf = io.BytesIO()
with wds.TarWriter(buf) as w:
    for i in range(6):
        s = UpRow(idx=i, name=f"n{i}", vec=np.arange(4, dtype="f4") * i)
        w.write({"__key__": f"{i:04d}", **{k: v for k, v in s.as_wds.items() if k != "__key__"}})
entry = DatasetPublisher(client).publish_with_blobs([buf.getvalue()], schema_uri, name="up-blobs")
print(entry)
