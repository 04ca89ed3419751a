package demo

import (
	"github.com/tipkit/tipkit/tiptest"
)

// seed creates bucket in env's S3, grants each user read and write on
// their own prefix (an S3 access grant to the Identity Center user, named
// by the user's ID as on AWS), and puts their files.
func seed(env *tiptest.Env, bucket string, users []User) error {
	if err := env.AWS.CreateBucket(bucket); err != nil {
		return err
	}
	for _, u := range users {
		env.AWS.Grant(bucket, u.Prefix, env.AWS.UserID(u.Name), tiptest.AccessReadWrite)
		for key, content := range u.Files {
			if err := env.AWS.PutObject(bucket, key, []byte(content)); err != nil {
				return err
			}
		}
	}
	return nil
}
