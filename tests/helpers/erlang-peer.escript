#!/usr/bin/env escript
%% Erlang/OTP's ssh application (Debian's erlang-ssh) as a peer of ours, for
%% tests/interop-erlang.test.ts.
%%
%%   erlang-peer.escript server SYSTEM_DIR USER_DIR
%%     A daemon on 127.0.0.1 (a free port) with the host key in SYSTEM_DIR, taking the public keys
%%     in USER_DIR/authorized_keys. A command is answered by its text, upper-cased. Prints
%%     {"port":N}, then serves until its stdin closes.
%%
%%   erlang-peer.escript client PORT USER USER_DIR HOST_SHA256 COMMAND
%%     Connects with USER_DIR's id_ed25519, taking the host key only if its fingerprint is
%%     HOST_SHA256 ("SHA256:...", as ssh-keygen -l prints it), runs COMMAND with this program's
%%     stdin as its input, copies its stdout and stderr to ours and exits with its exit status
%%     (255 if it could not).

main(Args) ->
    %% The ssh application reports to the logger, whose default handler writes to stdout: to
    %% stderr instead, where it cannot mix with a command's output.
    logger:set_primary_config(level, notice),
    ok = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h, #{config => #{type => standard_error}}),
    run(Args).

run(["server", SystemDir, UserDir]) ->
    ok = ssh:start(),
    {ok, D} = ssh:daemon({127, 0, 0, 1}, 0, [
        {system_dir, SystemDir},
        {user_dir, UserDir},
        {auth_methods, "publickey"},
        {exec, {direct, fun(Cmd) -> {ok, string:uppercase(Cmd)} end}}
    ]),
    {ok, Info} = ssh:daemon_info(D),
    Port = proplists:get_value(port, Info),
    io:format("{\"port\":~b}~n", [Port]),
    wait_stdin_closed();
run(["client", PortS, User, UserDir, HostFp, Command]) ->
    ok = ssh:start(),
    case ssh:connect("127.0.0.1", list_to_integer(PortS), [
        {user, User},
        {user_dir, UserDir},
        {silently_accept_hosts, {sha256, fun(_Peer, Fp) -> Fp =:= HostFp end}},
        {user_interaction, false},
        {save_accepted_host, false},
        {auth_methods, "publickey"}
    ] ++ algorithms(), 20000) of
        {ok, C} -> client(C, Command);
        {error, E} -> fail("connect", E)
    end;
run(_) ->
    io:format(standard_error, "usage: erlang-peer.escript server SYSTEM_DIR USER_DIR | client PORT USER USER_DIR HOST_SHA256 COMMAND~n", []),
    halt(255).

-define(USER_KEY, 'ssh-ed25519').

%% ERL_KEX, ERL_CIPHER, ERL_MAC and ERL_HOSTKEY, when set, are the one algorithm of each kind
%% offered (the user's key type aside).
algorithms() ->
    Pick = [{Kind, list_to_atom(V)} || {Kind, Var} <- [{kex, "ERL_KEX"}, {cipher, "ERL_CIPHER"}, {mac, "ERL_MAC"}, {public_key, "ERL_HOSTKEY"}],
                                       (V = os:getenv(Var, "")) =/= ""],
    case Pick of
        [] -> [];
        %% The public key list also limits the user's key: ours is Ed25519, offered after the host key's.
        _ -> [{preferred_algorithms, [{Kind, [A | [?USER_KEY || Kind =:= public_key, A =/= ?USER_KEY]]} || {Kind, A} <- Pick]}]
    end.

wait_stdin_closed() ->
    case io:get_line("") of
        eof -> halt(0);
        {error, _} -> halt(0);
        _ -> wait_stdin_closed()
    end.

fail(What, Why) ->
    io:format(standard_error, "erlang-peer: ~s: ~p~n", [What, Why]),
    halt(255).

client(C, Command) ->
    %% What was agreed, for the test to check.
    [{algorithms, Algs}] = ssh:connection_info(C, [algorithms]),
    io:format(standard_error, "erlang-peer: kex ~s cipher ~s mac ~s hostkey ~s~n",
              [proplists:get_value(K, Algs) || K <- [kex, encrypt, send_mac, hkey]]),
    {ok, Ch} = ssh_connection:session_channel(C, 20000),
    success = ssh_connection:exec(C, Ch, Command, 20000),
    %% Through standard_io: the runtime may already have read what was waiting on fd 0.
    ok = io:setopts(standard_io, [binary]),
    Stdin = read_all(standard_io, []),
    %% Sent from a process of its own: this one must take the output (and open its window)
    %% meanwhile. A command that ends without reading its input has closed the channel: both
    %% calls then fail, which is no error.
    spawn(fun() -> send_all(C, Ch, Stdin), ssh_connection:send_eof(C, Ch) end),
    Status = collect(C, Ch, {standard_io, standard_error}, 255),
    ssh:close(C),
    halt(Status).

read_all(Dev, Acc) ->
    case file:read(Dev, 65536) of
        {ok, Data} -> read_all(Dev, [Data | Acc]);
        eof -> iolist_to_binary(lists:reverse(Acc))
    end.

send_all(_C, _Ch, <<>>) -> ok;
send_all(C, Ch, Data) -> ssh_connection:send(C, Ch, Data, 20000).

%% The channel's messages until it closes, its output to Out and Err; the exit status it reported.
collect(C, Ch, {Out, Err} = Fds, Status) ->
    receive
        {ssh_cm, C, {data, Ch, Type, D}} ->
            ok = file:write(case Type of 0 -> Out; _ -> Err end, D),
            ssh_connection:adjust_window(C, Ch, byte_size(D)),
            collect(C, Ch, Fds, Status);
        {ssh_cm, C, {eof, Ch}} -> collect(C, Ch, Fds, Status);
        {ssh_cm, C, {exit_status, Ch, S}} -> collect(C, Ch, Fds, S);
        {ssh_cm, C, {exit_signal, Ch, _, _, _}} -> collect(C, Ch, Fds, Status);
        {ssh_cm, C, {closed, Ch}} -> Status
    after 30000 -> fail("channel", timeout)
    end.
