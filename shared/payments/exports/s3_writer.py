"""Bytes streamed into one S3 object: multipart once they outgrow a part, aborted on failure."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from payments.exports.csv_format import CONTENT_TYPE

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest non-final part


class S3ObjectWriter:
    """Bytes into one private, encrypted S3 object without holding more than one part in memory.

    Small outputs become one PutObject. Once the buffer reaches `part_size` a multipart upload starts
    and each full buffer becomes a part. Used as a context manager: a clean exit completes the object,
    an exception (or a failed completion) aborts the multipart upload, so no partial object is ever
    visible. (The bucket's AbortIncompleteUploads rule is the backstop if even the abort fails.)
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        content_type: str = CONTENT_TYPE,
        content_disposition: str | None = None,
        part_size: int = MIN_PART_SIZE,
    ) -> None:
        self.s3, self.bucket, self.key, self.part_size = s3, bucket, key, part_size
        self._object_args: dict[str, Any] = {"ContentType": content_type, "ServerSideEncryption": "AES256"}
        if content_disposition:
            self._object_args["ContentDisposition"] = content_disposition
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_written = 0

    @property
    def parts(self) -> int:
        return len(self._parts)

    def write(self, data: bytes, /) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= self.part_size:
            self._upload_part()

    def _upload_part(self) -> None:
        if self._upload_id is None:
            answer = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ChecksumAlgorithm="CRC32", **self._object_args
            )
            self._upload_id = answer["UploadId"]
        # Hand the bytearray itself to botocore and start a new one: no copy of the part is made.
        body, self._buffer = self._buffer, bytearray()
        number = len(self._parts) + 1
        uploaded = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,  # type: ignore[arg-type]  # botocore accepts bytearray
            ChecksumAlgorithm="CRC32",
        )
        self._parts.append({"PartNumber": number, "ETag": uploaded["ETag"], "ChecksumCRC32": uploaded["ChecksumCRC32"]})

    def close(self) -> None:
        """Make the object visible: one PutObject, or the last part and CompleteMultipartUpload."""
        if self._upload_id is None:
            body, self._buffer = self._buffer, bytearray()
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, **self._object_args)  # type: ignore[arg-type]
            return
        if self._buffer:
            self._upload_part()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
        )
        self._upload_id = None

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # the original failure matters more; the lifecycle rule cleans up later
            logger.warning("could not abort multipart upload", extra={"key": self.key}, exc_info=True)

    def __enter__(self) -> S3ObjectWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise
