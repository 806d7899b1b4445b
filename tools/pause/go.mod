// The pod sandbox's pause process of the local cluster's node (see main.go); no dependencies.
module mcpregistry.dev/tools/pause

go 1.26.0
