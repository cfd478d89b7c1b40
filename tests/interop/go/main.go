// The AWS SDK for Go v2 (Debian's golang-github-aws-aws-sdk-go-v2-dev) against a real
// strict-mode ferrokms, as a Go service uses it: a key, a data key, a ciphertext bound to its
// encryption context, and the refusal a wrong context gets, as the SDK's typed error. Built
// and run by tests/e2e/interop.rs in GOPATH mode over Debian's Go sources, so nothing is
// downloaded.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	ctx := context.Background()
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")),
	}
	client := kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.EndpointResolver = kms.EndpointResolverFromURL(os.Getenv("FERROKMS_ENDPOINT"))
	})

	made, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("go interop")})
	if err != nil {
		fail("CreateKey: %v", err)
	}
	key := *made.KeyMetadata.Arn
	dataKey, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &key, KeySpec: types.DataKeySpecAes256})
	if err != nil || len(dataKey.Plaintext) != 32 {
		fail("GenerateDataKey: %v", err)
	}
	encryptionContext := map[string]string{"tenant": "acme"}
	sealed, err := client.Encrypt(ctx, &kms.EncryptInput{
		KeyId: &key, Plaintext: []byte("hello from go"), EncryptionContext: encryptionContext,
	})
	if err != nil {
		fail("Encrypt: %v", err)
	}
	opened, err := client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: encryptionContext,
	})
	if err != nil || !bytes.Equal(opened.Plaintext, []byte("hello from go")) || *opened.KeyId != key {
		fail("Decrypt: %v", err)
	}
	_, err = client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "evil"},
	})
	var invalid *types.InvalidCiphertextException
	if !errors.As(err, &invalid) {
		fail("a wrong context gave %v, not InvalidCiphertextException", err)
	}
	fmt.Println("go interop: ok")
}
