-- wrk: ECS DescribeClusters as an SDK sends it (awsJson 1.1, SigV4 Authorization header).
wrk.method = "POST"
wrk.path = "/"
wrk.body = '{"clusters":["bench"]}'
wrk.headers["X-Amz-Target"] = "AmazonEC2ContainerServiceV20141113.DescribeClusters"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Date"] = "20260101T000000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000"
