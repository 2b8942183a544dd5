// cli-agentfwd.c and svr-agentfwd.c land here.
export {};
