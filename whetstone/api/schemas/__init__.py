"""The API's wire models: what each route answers, mapped field by field from the stored
records and service results, never those themselves.

Pure pydantic on the core value types, so the SDK and the CLI import them without the
server's dependencies (no powertools, boto3 or whetstone.service). Each model derives from
DeferredModel: the API's cold start builds only the schemas a request touches.
"""
