module github.com/lambda-mesh/lambda-mesh/extension

go 1.19
