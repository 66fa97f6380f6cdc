module lambdamesh/extension

go 1.19
