using System.CommandLine;
using Microsoft.Extensions.Logging;
using NbdFast.Cli;
using NbdFast.Cli.Logging;

(string[] arguments, LogLevel level) = Verbosity.Extract(args);
var commandLine = new CommandLine();
if (arguments.Any(a => a is "--help" or "-h" or "-?"))
{
    Console.Out.Write(HelpText.Render(commandLine));
    return 0;
}
if (arguments.Contains("--version"))
{
    Console.Out.WriteLine($"nbdfast {HelpText.Version}");
    return 0;
}
ParseResult parsed = commandLine.Root.Parse(arguments);
if (parsed.Errors.Count > 0)
{
    Console.Error.WriteLine($"nbdfast: {parsed.Errors[0].Message} (try --help)");
    return 2;
}

using var loggerFactory = new LoggerFactory([new StderrLoggerProvider()], new LoggerFilterOptions { MinLevel = level });
ILogger log = loggerFactory.CreateLogger("nbdfast");
try
{
    CliSettings settings = commandLine.Bind(parsed, level);
    ServerApp app = await ServerApp.StartAsync(settings, log);
    // Never disposed: a signal that arrives while the process is already stopping must not kill it with the
    // default action (status 143); the app ignores signals once it has stopped.
    var signals = new SignalHandler(app);
    int status;
    try
    {
        status = await app.RunAsync();
    }
    finally
    {
        await app.DisposeAsync();
    }
    GC.KeepAlive(signals);
    return status;
}
catch (UsageException e)
{
    Console.Error.WriteLine($"nbdfast: {e.Message}");
    return 2;
}
