# Terraform's AWS provider against ferrokms (tests/e2e/interop.rs runs it): a key with
# rotation, an alias, and a round trip through KMS (aws_kms_ciphertext, then
# aws_kms_secrets decrypting it).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "endpoint" {
  type = string
}

# The context aws_kms_secrets decrypts with: any other than the ciphertext's is refused.
variable "decrypt_purpose" {
  type    = string
  default = "interop"
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    kms = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_kms_key" "this" {
  description             = "made by terraform"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  tags = {
    team = "platform"
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/terraform-interop"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_kms_ciphertext" "this" {
  key_id    = aws_kms_alias.this.target_key_id
  plaintext = "terraform round trip"
  context = {
    purpose = "interop"
  }
}

data "aws_kms_secrets" "this" {
  secret {
    name    = "message"
    payload = aws_kms_ciphertext.this.ciphertext_blob
    context = {
      purpose = var.decrypt_purpose
    }
  }
}

output "key_id" {
  value = aws_kms_key.this.key_id
}

output "decrypted" {
  value     = data.aws_kms_secrets.this.plaintext["message"]
  sensitive = true
}
