#!/usr/bin/env bash
# Sets up, with the AWS CLI, what a tipkit server needs on AWS:
#
#   1. IAM Identity Center: a trusted token issuer for your identity
#      provider, and a customer managed OAuth 2.0 application that trusts
#      it for your audience (JWT bearer grant), may be used with S3 Access
#      Grants, is called only by the role that signs the exchange, and is
#      assigned to the users listed in USERS;
#   2. IAM: the application role (assumed with each user's token; skipped
#      when SERVER_ROLE_ARN names the server's own role instead), and the
#      access role, assumed with each user's identity context;
#   3. S3 Access Grants: an instance associated with the Identity Center
#      instance, BUCKET registered as a location, and one grant per user of
#      READWRITE on that user's prefix.
#
# It prints the TIPKIT_ variables for the examples (see README.md).
#
# Run it once, with credentials of an administrator of the account that
# holds the organization's (or the account's) IAM Identity Center instance,
# in that instance's region. It is not idempotent: a second run stops
# (set -e) at the first resource that already exists. It does not create
# the Identity Center instance, its users, or the bucket.
#
# Variables (required unless a default is given):
#   REGION          region of the IAM Identity Center instance; the S3
#                   Access Grants instance and BUCKET must be in it too
#   ISSUER          exact iss of your identity provider's tokens (a
#                   trailing slash counts: see README.md, per identity provider)
#   AUDIENCE        the aud of the tokens your server accepts
#   BUCKET          the bucket of the users' data
#   USERS           space-separated NAME:PREFIX pairs: an Identity Center
#                   user name and the prefix of BUCKET granted to that user,
#                   for example "alice@example.com:alice/ bob@example.com:bob/"
#   CLAIM           the token claim that names the user (default: email)
#   STORE_ATTRIBUTE the Identity Center attribute it must equal
#                   (default: emails.value)
#   NAME            prefix of the names created (default: tipkit)
#   SERVER_ROLE_ARN when set, no application role is created: this role
#                   (the server's own, for example its ECS task role) signs
#                   the exchange, and it needs the policy printed at the end
set -euo pipefail

: "${REGION:?set REGION}" "${ISSUER:?set ISSUER}" "${AUDIENCE:?set AUDIENCE}"
: "${BUCKET:?set BUCKET}" "${USERS:?set USERS}"
CLAIM="${CLAIM:-email}"
STORE_ATTRIBUTE="${STORE_ATTRIBUTE:-emails.value}"
NAME="${NAME:-tipkit}"
SERVER_ROLE_ARN="${SERVER_ROLE_ARN:-}"
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"

step() { printf '\n== %s\n' "$*" >&2; }

ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text)"

step "IAM Identity Center instance"
read -r INSTANCE_ARN IDENTITY_STORE_ID < <(aws sso-admin list-instances \
	--query 'Instances[0].[InstanceArn,IdentityStoreId]' --output text)
if [ -z "$INSTANCE_ARN" ] || [ "$INSTANCE_ARN" = "None" ]; then
	echo "no IAM Identity Center instance in $REGION" >&2
	exit 1
fi
echo "$INSTANCE_ARN (identity store $IDENTITY_STORE_ID)" >&2

step "Trusted token issuer for $ISSUER (claim $CLAIM = $STORE_ATTRIBUTE)"
TTI_ARN="$(aws sso-admin create-trusted-token-issuer \
	--instance-arn "$INSTANCE_ARN" \
	--name "$NAME-issuer" \
	--trusted-token-issuer-type OIDC_JWT \
	--trusted-token-issuer-configuration "$(cat <<EOF
{"OidcJwtConfiguration": {
  "IssuerUrl": "$ISSUER",
  "ClaimAttributePath": "$CLAIM",
  "IdentityStoreAttributePath": "$STORE_ATTRIBUTE",
  "JwksRetrievalOption": "OPEN_ID_DISCOVERY"
}}
EOF
)" \
	--query TrustedTokenIssuerArn --output text)"
echo "$TTI_ARN" >&2

step "Customer managed application $NAME"
APPLICATION_ARN="$(aws sso-admin create-application \
	--instance-arn "$INSTANCE_ARN" \
	--application-provider-arn arn:aws:sso::aws:applicationProvider/custom \
	--name "$NAME" \
	--query ApplicationArn --output text)"
echo "$APPLICATION_ARN" >&2

aws sso-admin put-application-grant \
	--application-arn "$APPLICATION_ARN" \
	--grant-type urn:ietf:params:oauth:grant-type:jwt-bearer \
	--grant "$(cat <<EOF
{"JwtBearer": {"AuthorizedTokenIssuers": [
  {"TrustedTokenIssuerArn": "$TTI_ARN", "AuthorizedAudiences": ["$AUDIENCE"]}
]}}
EOF
)"
# The identity context may be used with S3 Access Grants. Add the scopes of
# other services the users' sessions call (see AWS's documentation of each).
aws sso-admin put-application-access-scope \
	--application-arn "$APPLICATION_ARN" \
	--scope s3:access_grants:read_write

ACCESS_ROLE="$NAME-access"
ACCESS_ROLE_ARN="arn:aws:iam::$ACCOUNT_ID:role/$ACCESS_ROLE"

if [ -z "$SERVER_ROLE_ARN" ]; then
	step "Application role $NAME-application (assumed with each user's token)"
	PROVIDER="${ISSUER#https://}"
	PROVIDER="${PROVIDER%/}"
	PROVIDER_ARN="arn:aws:iam::$ACCOUNT_ID:oidc-provider/$PROVIDER"
	if ! aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$PROVIDER_ARN" >/dev/null 2>&1; then
		aws iam create-open-id-connect-provider --url "https://$PROVIDER" --client-id-list "$AUDIENCE" >/dev/null
	else
		aws iam add-client-id-to-open-id-connect-provider \
			--open-id-connect-provider-arn "$PROVIDER_ARN" --client-id "$AUDIENCE"
	fi
	ACTOR_ROLE_ARN="$(aws iam create-role \
		--role-name "$NAME-application" \
		--assume-role-policy-document "$(cat <<EOF
{"Version": "2012-10-17", "Statement": [{
  "Effect": "Allow",
  "Principal": {"Federated": "$PROVIDER_ARN"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"$PROVIDER:aud": "$AUDIENCE"}}
}]}
EOF
)" \
		--query Role.Arn --output text)"
	aws iam wait role-exists --role-name "$NAME-application"
else
	ACTOR_ROLE_ARN="$SERVER_ROLE_ARN"
fi
ACTOR_POLICY="$(cat <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "sso-oauth:CreateTokenWithIAM", "Resource": "*"},
  {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetContext"], "Resource": "$ACCESS_ROLE_ARN"}
]}
EOF
)"
if [ -z "$SERVER_ROLE_ARN" ]; then
	aws iam put-role-policy --role-name "$NAME-application" \
		--policy-name exchange --policy-document "$ACTOR_POLICY"
fi

step "Only $ACTOR_ROLE_ARN may call CreateTokenWithIAM for the application"
aws sso-admin put-application-authentication-method \
	--application-arn "$APPLICATION_ARN" \
	--authentication-method-type IAM \
	--authentication-method "$(cat <<EOF
{"Iam": {"ActorPolicy": {"Version": "2012-10-17", "Statement": [{
  "Effect": "Allow",
  "Principal": {"AWS": "$ACTOR_ROLE_ARN"},
  "Action": "sso-oauth:CreateTokenWithIAM",
  "Resource": "*"
}]}}}
EOF
)"

step "Access role $ACCESS_ROLE (assumed with each user's identity context)"
aws iam create-role \
	--role-name "$ACCESS_ROLE" \
	--assume-role-policy-document "$(cat <<EOF
{"Version": "2012-10-17", "Statement": [{
  "Effect": "Allow",
  "Principal": {"AWS": "$ACTOR_ROLE_ARN"},
  "Action": ["sts:AssumeRole", "sts:SetContext"]
}]}
EOF
)" >/dev/null
aws iam put-role-policy --role-name "$ACCESS_ROLE" --policy-name data-access \
	--policy-document "$(cat <<EOF
{"Version": "2012-10-17", "Statement": [{
  "Effect": "Allow",
  "Action": ["s3:GetDataAccess", "s3:ListCallerAccessGrants"],
  "Resource": "arn:aws:s3:$REGION:$ACCOUNT_ID:access-grants/default"
}]}
EOF
)"
aws iam wait role-exists --role-name "$ACCESS_ROLE"

step "S3 Access Grants instance, associated with the Identity Center instance"
if ! aws s3control get-access-grants-instance --account-id "$ACCOUNT_ID" >/dev/null 2>&1; then
	aws s3control create-access-grants-instance --account-id "$ACCOUNT_ID" \
		--identity-center-arn "$INSTANCE_ARN" >/dev/null
else
	aws s3control associate-access-grants-identity-center --account-id "$ACCOUNT_ID" \
		--identity-center-arn "$INSTANCE_ARN"
fi

step "Location s3://$BUCKET/ and the role S3 Access Grants assumes for it"
LOCATION_ROLE="$NAME-access-grants-location"
LOCATION_ROLE_ARN="$(aws iam create-role \
	--role-name "$LOCATION_ROLE" \
	--assume-role-policy-document "$(cat <<EOF
{"Version": "2012-10-17", "Statement": [{
  "Effect": "Allow",
  "Principal": {"Service": "access-grants.s3.amazonaws.com"},
  "Action": ["sts:AssumeRole", "sts:SetContext", "sts:SetSourceIdentity"],
  "Condition": {"StringEquals": {"aws:SourceAccount": "$ACCOUNT_ID"}}
}]}
EOF
)" \
	--query Role.Arn --output text)"
aws iam put-role-policy --role-name "$LOCATION_ROLE" --policy-name bucket \
	--policy-document "$(cat <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow",
   "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
              "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
   "Resource": "arn:aws:s3:::$BUCKET/*"},
  {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::$BUCKET"}
]}
EOF
)"
aws iam wait role-exists --role-name "$LOCATION_ROLE"
sleep 10 # IAM is eventually consistent: S3 Access Grants checks that it may assume the role
LOCATION_ID="$(aws s3control create-access-grants-location --account-id "$ACCOUNT_ID" \
	--location-scope "s3://$BUCKET/" --iam-role-arn "$LOCATION_ROLE_ARN" \
	--query AccessGrantsLocationId --output text)"

step "Users: assignment to the application and a grant each"
aws sso-admin put-application-assignment-configuration \
	--application-arn "$APPLICATION_ARN" --assignment-required
for pair in $USERS; do
	user="${pair%%:*}"
	prefix="${pair#*:}"
	user_id="$(aws identitystore get-user-id --identity-store-id "$IDENTITY_STORE_ID" \
		--alternate-identifier "{\"UniqueAttribute\": {\"AttributePath\": \"userName\", \"AttributeValue\": \"$user\"}}" \
		--query UserId --output text)"
	aws sso-admin create-application-assignment --application-arn "$APPLICATION_ARN" \
		--principal-id "$user_id" --principal-type USER
	aws s3control create-access-grant --account-id "$ACCOUNT_ID" \
		--access-grants-location-id "$LOCATION_ID" \
		--access-grants-location-configuration "S3SubPrefix=${prefix}*" \
		--permission READWRITE \
		--grantee "GranteeType=DIRECTORY_USER,GranteeIdentifier=$user_id" >/dev/null
	echo "$user ($user_id): READWRITE on s3://$BUCKET/${prefix}*" >&2
done

step "Done"
if [ -n "$SERVER_ROLE_ARN" ]; then
	echo "Attach this policy to $SERVER_ROLE_ARN:" >&2
	echo "$ACTOR_POLICY" >&2
fi
cat <<EOF
export TIPKIT_ISSUER='$ISSUER'
export TIPKIT_AUDIENCE='$AUDIENCE'
export TIPKIT_APPLICATION_ARN='$APPLICATION_ARN'
export TIPKIT_ACCESS_ROLE_ARN='$ACCESS_ROLE_ARN'
export TIPKIT_BUCKET='$BUCKET'
export TIPKIT_ACCOUNT_ID='$ACCOUNT_ID'
export AWS_REGION='$REGION'
EOF
if [ -z "$SERVER_ROLE_ARN" ]; then
	echo "export TIPKIT_APPLICATION_ROLE_ARN='$ACTOR_ROLE_ARN'"
fi
