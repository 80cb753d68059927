//+------------------------------------------------------------------+
//| MT5Guard.mq5 — pushes this account's state to MT5 Guard and      |
//| executes the close commands it queues (docs/EA-PROTOCOL.md, v1). |
//|                                                                  |
//| Function by function parallel to integrations/mt5/ea/emulator.py |
//| (OnInit=start, OnTimer=on_timer, BuildPush=build_push,           |
//| SignedRequest=signed_request, PollCommands=poll_commands,        |
//| ExecuteCommand=execute_command, PostResult=post_result).         |
//| Install: Tools > Options > Expert Advisors > "Allow WebRequest   |
//| for listed URL" and add InpServerUrl; attach to any one chart.   |
//+------------------------------------------------------------------+
#property copyright "MT5 Guard"
#property version   "1.00"
#property strict

#include <Trade\Trade.mqh>

input string InpServerUrl    = "https://guard.example.com"; // MT5 Guard server (no trailing slash)
input string InpKeyId        = "";                          // Key id shown once in the admin
input string InpKeySecret    = "";                          // Key secret shown once in the admin
input int    InpPushSeconds  = 5;                           // Push interval (seconds)

#define EA_VERSION        "1.0.0"
#define PROTOCOL_VERSION  1
#define PUSH_PATH         "/api/v1/ea/push/"
#define COMMANDS_PATH     "/api/v1/ea/commands/"
#define RESULT_PATH_HEAD  "/api/v1/ea/commands/"
#define RESULT_PATH_TAIL  "/result/"
#define HEADER_KEY        "X-MT5G-Key"
#define HEADER_TIMESTAMP  "X-MT5G-Timestamp"
#define HEADER_NONCE      "X-MT5G-Nonce"
#define HEADER_SIGNATURE  "X-MT5G-Signature"
#define HISTORY_DAYS_ON_START 3

long g_deals_cursor_msc = 0;   // newest deal time the server accepted

//+------------------------------------------------------------------+
//| OnInit = emulator.start                                          |
//+------------------------------------------------------------------+
int OnInit()
  {
   if(InpKeyId == "" || InpKeySecret == "")
     {
      Print("MT5Guard: set InpKeyId and InpKeySecret (shown once when the owner created the key)");
      return(INIT_PARAMETERS_INCORRECT);
     }
   g_deals_cursor_msc = ((long)TimeTradeServer() - HISTORY_DAYS_ON_START * 86400) * 1000;
   EventSetTimer(MathMax(InpPushSeconds, 1));
   return(INIT_SUCCEEDED);
  }

void OnDeinit(const int reason) { EventKillTimer(); }

//+------------------------------------------------------------------+
//| OnTimer = emulator.on_timer: push, then fetch commands if any    |
//+------------------------------------------------------------------+
void OnTimer()
  {
   string answer;
   if(!Push(answer))
      return;
   if(StringFind(answer, "\"commands_pending\": true") >= 0 || StringFind(answer, "\"commands_pending\":true") >= 0)
      PollCommands(0);
  }

//+------------------------------------------------------------------+
//| OnTradeTransaction: every trade event pushes at once             |
//+------------------------------------------------------------------+
void OnTradeTransaction(const MqlTradeTransaction &trans, const MqlTradeRequest &request, const MqlTradeResult &result)
  {
   if(trans.type == TRADE_TRANSACTION_DEAL_ADD)
     {
      string answer;
      Push(answer);
     }
  }

//+------------------------------------------------------------------+
//| Hashing and signing (MQL5 has SHA-256, not HMAC: built here)     |
//+------------------------------------------------------------------+
string HexOf(const uchar &bytes[])
  {
   string hex = "";
   for(int i = 0; i < ArraySize(bytes); i++)
      hex += StringFormat("%02x", bytes[i]);
   return(hex);
  }

void Sha256(const uchar &data[], uchar &digest[])
  {
   uchar nokey[];
   CryptEncode(CRYPT_HASH_SHA256, data, nokey, digest);
  }

string Sha256Hex(const uchar &data[])
  {
   uchar digest[];
   Sha256(data, digest);
   return(HexOf(digest));
  }

// HMAC-SHA256(key, message) = SHA256((key ^ opad) || SHA256((key ^ ipad) || message)), block size 64.
string HmacSha256Hex(const string key, const string message)
  {
   uchar k[], msg[], block[64], inner[], inner_digest[], outer[], digest[];
   StringToCharArray(key, k, 0, StringLen(key), CP_UTF8);
   if(ArraySize(k) > 64)
     {
      uchar hashed[];
      Sha256(k, hashed);
      ArrayCopy(k, hashed);
      ArrayResize(k, 32);
     }
   ArrayInitialize(block, 0);
   ArrayCopy(block, k);
   StringToCharArray(message, msg, 0, StringLen(message), CP_UTF8);
   ArrayResize(inner, 64 + ArraySize(msg));
   for(int i = 0; i < 64; i++)
      inner[i] = (uchar)(block[i] ^ 0x36);
   ArrayCopy(inner, msg, 64);
   Sha256(inner, inner_digest);
   ArrayResize(outer, 64 + ArraySize(inner_digest));
   for(int j = 0; j < 64; j++)
      outer[j] = (uchar)(block[j] ^ 0x5c);
   ArrayCopy(outer, inner_digest, 64);
   Sha256(outer, digest);
   return(HexOf(digest));
  }

// The string to sign: method, path (no query), timestamp, nonce and the body's SHA-256 hex, one per line.
string StringToSign(const string method, const string path, const string timestamp, const string nonce, const uchar &body[])
  {
   return(method + "\n" + path + "\n" + timestamp + "\n" + nonce + "\n" + Sha256Hex(body));
  }

string NewNonce()
  {
   return(StringFormat("%I64x%08x%08x", GetMicrosecondCount(), MathRand(), (int)TimeLocal()));
  }

//+------------------------------------------------------------------+
//| SignedRequest = emulator.signed_request                          |
//+------------------------------------------------------------------+
int SignedRequest(const string method, const string path, const string query, const string body_text, string &answer)
  {
   uchar body[], reply[];
   if(StringLen(body_text) > 0)
      StringToCharArray(body_text, body, 0, StringLen(body_text), CP_UTF8);
   string timestamp = IntegerToString((long)TimeGMT());
   string nonce = NewNonce();
   string signature = HmacSha256Hex(InpKeySecret, StringToSign(method, path, timestamp, nonce, body));
   string headers = "Content-Type: application/json\r\n"
                    + HEADER_KEY + ": " + InpKeyId + "\r\n"
                    + HEADER_TIMESTAMP + ": " + timestamp + "\r\n"
                    + HEADER_NONCE + ": " + nonce + "\r\n"
                    + HEADER_SIGNATURE + ": " + signature + "\r\n";
   string reply_headers;
   ResetLastError();
   int status = WebRequest(method, InpServerUrl + path + query, headers, 30000, body, reply, reply_headers);
   if(status == -1)
      PrintFormat("MT5Guard: WebRequest failed (%d): allow %s in Tools > Options > Expert Advisors", GetLastError(), InpServerUrl);
   answer = CharArrayToString(reply, 0, WHOLE_ARRAY, CP_UTF8);
   return(status);
  }

//+------------------------------------------------------------------+
//| JSON writing helpers                                             |
//+------------------------------------------------------------------+
string Q(const string s)
  {
   string out = s;
   StringReplace(out, "\\", "\\\\");
   StringReplace(out, "\"", "\\\"");
   return("\"" + out + "\"");
  }
string KV(const string name, const string json_value) { return(Q(name) + ":" + json_value); }
string Num(const double value, const int digits) { return(DoubleToString(value, digits)); }
string Bool(const bool value) { return(value ? "true" : "false"); }

//+------------------------------------------------------------------+
//| BuildPush = emulator.build_push                                  |
//+------------------------------------------------------------------+
string BuildAccount()
  {
   int d = (int)AccountInfoInteger(ACCOUNT_CURRENCY_DIGITS);
   return("{" + KV("balance", Num(AccountInfoDouble(ACCOUNT_BALANCE), d))
          + "," + KV("credit", Num(AccountInfoDouble(ACCOUNT_CREDIT), d))
          + "," + KV("profit", Num(AccountInfoDouble(ACCOUNT_PROFIT), d))
          + "," + KV("equity", Num(AccountInfoDouble(ACCOUNT_EQUITY), d))
          + "," + KV("margin", Num(AccountInfoDouble(ACCOUNT_MARGIN), d))
          + "," + KV("margin_free", Num(AccountInfoDouble(ACCOUNT_MARGIN_FREE), d))
          + "," + KV("margin_level", Num(AccountInfoDouble(ACCOUNT_MARGIN_LEVEL), 2))
          + "," + KV("margin_so_call", Num(AccountInfoDouble(ACCOUNT_MARGIN_SO_CALL), 2))
          + "," + KV("margin_so_so", Num(AccountInfoDouble(ACCOUNT_MARGIN_SO_SO), 2))
          + "," + KV("leverage", IntegerToString(AccountInfoInteger(ACCOUNT_LEVERAGE)))
          + "," + KV("currency", Q(AccountInfoString(ACCOUNT_CURRENCY)))
          + "," + KV("currency_digits", IntegerToString(d))
          + "," + KV("margin_mode", IntegerToString(AccountInfoInteger(ACCOUNT_MARGIN_MODE)))
          + "," + KV("trade_allowed", Bool(AccountInfoInteger(ACCOUNT_TRADE_ALLOWED) != 0))
          + "," + KV("trade_expert", Bool(AccountInfoInteger(ACCOUNT_TRADE_EXPERT) != 0))
          + "," + KV("name", Q(AccountInfoString(ACCOUNT_NAME)))
          + "," + KV("company", Q(AccountInfoString(ACCOUNT_COMPANY))) + "}");
  }

string BuildTerminal()
  {
   return("{" + KV("connected", Bool(TerminalInfoInteger(TERMINAL_CONNECTED) != 0))
          + "," + KV("trade_allowed", Bool(TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) != 0))
          + "," + KV("ping_last", IntegerToString(TerminalInfoInteger(TERMINAL_PING_LAST)))
          + "," + KV("build", IntegerToString(TerminalInfoInteger(TERMINAL_BUILD))) + "}");
  }

string BuildPositions(string &symbols[])
  {
   string rows = "";
   for(int i = 0; i < PositionsTotal(); i++)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0 || !PositionSelectByTicket(ticket))
         continue;
      string symbol = PositionGetString(POSITION_SYMBOL);
      AddSymbol(symbols, symbol);
      int d = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      rows += (rows == "" ? "" : ",") + "{" + KV("ticket", IntegerToString((long)ticket))
              + "," + KV("time_msc", IntegerToString(PositionGetInteger(POSITION_TIME_MSC)))
              + "," + KV("type", IntegerToString(PositionGetInteger(POSITION_TYPE)))
              + "," + KV("magic", IntegerToString(PositionGetInteger(POSITION_MAGIC)))
              + "," + KV("identifier", IntegerToString(PositionGetInteger(POSITION_IDENTIFIER)))
              + "," + KV("reason", IntegerToString(PositionGetInteger(POSITION_REASON)))
              + "," + KV("volume", Num(PositionGetDouble(POSITION_VOLUME), 2))
              + "," + KV("price_open", Num(PositionGetDouble(POSITION_PRICE_OPEN), d))
              + "," + KV("sl", Num(PositionGetDouble(POSITION_SL), d))
              + "," + KV("tp", Num(PositionGetDouble(POSITION_TP), d))
              + "," + KV("price_current", Num(PositionGetDouble(POSITION_PRICE_CURRENT), d))
              + "," + KV("swap", Num(PositionGetDouble(POSITION_SWAP), 2))
              + "," + KV("profit", Num(PositionGetDouble(POSITION_PROFIT), 2))
              + "," + KV("symbol", Q(symbol))
              + "," + KV("comment", Q(PositionGetString(POSITION_COMMENT))) + "}";
     }
   return("[" + rows + "]");
  }

string BuildDeals(string &symbols[], long &newest_msc)
  {
   string rows = "";
   newest_msc = g_deals_cursor_msc;
   if(!HistorySelect((datetime)(g_deals_cursor_msc / 1000), TimeTradeServer() + 1))
      return("[]");
   for(int i = 0; i < HistoryDealsTotal() && i < 2000; i++)
     {
      ulong ticket = HistoryDealGetTicket(i);
      if(ticket == 0)
         continue;
      string symbol = HistoryDealGetString(ticket, DEAL_SYMBOL);
      if(symbol != "")
         AddSymbol(symbols, symbol);
      long time_msc = HistoryDealGetInteger(ticket, DEAL_TIME_MSC);
      newest_msc = MathMax(newest_msc, time_msc);
      rows += (rows == "" ? "" : ",") + "{" + KV("ticket", IntegerToString((long)ticket))
              + "," + KV("order", IntegerToString(HistoryDealGetInteger(ticket, DEAL_ORDER)))
              + "," + KV("time_msc", IntegerToString(time_msc))
              + "," + KV("type", IntegerToString(HistoryDealGetInteger(ticket, DEAL_TYPE)))
              + "," + KV("entry", IntegerToString(HistoryDealGetInteger(ticket, DEAL_ENTRY)))
              + "," + KV("magic", IntegerToString(HistoryDealGetInteger(ticket, DEAL_MAGIC)))
              + "," + KV("position_id", IntegerToString(HistoryDealGetInteger(ticket, DEAL_POSITION_ID)))
              + "," + KV("reason", IntegerToString(HistoryDealGetInteger(ticket, DEAL_REASON)))
              + "," + KV("volume", Num(HistoryDealGetDouble(ticket, DEAL_VOLUME), 2))
              + "," + KV("price", Num(HistoryDealGetDouble(ticket, DEAL_PRICE), 8))
              + "," + KV("commission", Num(HistoryDealGetDouble(ticket, DEAL_COMMISSION), 2))
              + "," + KV("swap", Num(HistoryDealGetDouble(ticket, DEAL_SWAP), 2))
              + "," + KV("profit", Num(HistoryDealGetDouble(ticket, DEAL_PROFIT), 2))
              + "," + KV("fee", Num(HistoryDealGetDouble(ticket, DEAL_FEE), 2))
              + "," + KV("symbol", Q(symbol))
              + "," + KV("comment", Q(HistoryDealGetString(ticket, DEAL_COMMENT))) + "}";
     }
   return("[" + rows + "]");
  }

void AddSymbol(string &symbols[], const string symbol)
  {
   for(int i = 0; i < ArraySize(symbols); i++)
      if(symbols[i] == symbol)
         return;
   int n = ArraySize(symbols);
   ArrayResize(symbols, n + 1);
   symbols[n] = symbol;
  }

string BuildTicks(const string &symbols[])
  {
   string rows = "";
   for(int i = 0; i < ArraySize(symbols); i++)
     {
      MqlTick tick;
      if(!SymbolInfoTick(symbols[i], tick))
         continue;
      int d = (int)SymbolInfoInteger(symbols[i], SYMBOL_DIGITS);
      rows += (rows == "" ? "" : ",") + KV(symbols[i], "{" + KV("time_msc", IntegerToString(tick.time_msc))
              + "," + KV("bid", Num(tick.bid, d)) + "," + KV("ask", Num(tick.ask, d))
              + "," + KV("digits", IntegerToString(d))
              + "," + KV("point", Num(SymbolInfoDouble(symbols[i], SYMBOL_POINT), d)) + "}");
     }
   return("{" + rows + "}");
  }

string BuildSymbols(const string &symbols[])
  {
   string rows = "";
   for(int i = 0; i < ArraySize(symbols); i++)
     {
      string s = symbols[i];
      int d = (int)SymbolInfoInteger(s, SYMBOL_DIGITS);
      rows += (rows == "" ? "" : ",") + KV(s, "{" + KV("digits", IntegerToString(d))
              + "," + KV("point", Num(SymbolInfoDouble(s, SYMBOL_POINT), d))
              + "," + KV("trade_tick_size", Num(SymbolInfoDouble(s, SYMBOL_TRADE_TICK_SIZE), d))
              + "," + KV("trade_tick_value", Num(SymbolInfoDouble(s, SYMBOL_TRADE_TICK_VALUE), 8))
              + "," + KV("trade_contract_size", Num(SymbolInfoDouble(s, SYMBOL_TRADE_CONTRACT_SIZE), 2))
              + "," + KV("volume_min", Num(SymbolInfoDouble(s, SYMBOL_VOLUME_MIN), 2))
              + "," + KV("volume_max", Num(SymbolInfoDouble(s, SYMBOL_VOLUME_MAX), 2))
              + "," + KV("volume_step", Num(SymbolInfoDouble(s, SYMBOL_VOLUME_STEP), 2))
              + "," + KV("trade_stops_level", IntegerToString(SymbolInfoInteger(s, SYMBOL_TRADE_STOPS_LEVEL)))
              + "," + KV("trade_freeze_level", IntegerToString(SymbolInfoInteger(s, SYMBOL_TRADE_FREEZE_LEVEL)))
              + "," + KV("trade_mode", IntegerToString(SymbolInfoInteger(s, SYMBOL_TRADE_MODE)))
              + "," + KV("trade_exemode", IntegerToString(SymbolInfoInteger(s, SYMBOL_TRADE_EXEMODE)))
              + "," + KV("trade_calc_mode", IntegerToString(SymbolInfoInteger(s, SYMBOL_TRADE_CALC_MODE)))
              + "," + KV("filling_mode", IntegerToString(SymbolInfoInteger(s, SYMBOL_FILLING_MODE)))
              + "," + KV("currency_base", Q(SymbolInfoString(s, SYMBOL_CURRENCY_BASE)))
              + "," + KV("currency_profit", Q(SymbolInfoString(s, SYMBOL_CURRENCY_PROFIT)))
              + "," + KV("currency_margin", Q(SymbolInfoString(s, SYMBOL_CURRENCY_MARGIN)))
              + "," + KV("spread", IntegerToString(SymbolInfoInteger(s, SYMBOL_SPREAD))) + "}");
     }
   return("{" + rows + "}");
  }

string BuildPush(long &newest_deal_msc)
  {
   string symbols[];
   string positions = BuildPositions(symbols);
   string deals = BuildDeals(symbols, newest_deal_msc);
   return("{" + KV("protocol", IntegerToString(PROTOCOL_VERSION))
          + "," + KV("ea_version", Q(EA_VERSION))
          + "," + KV("login", IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN)))
          + "," + KV("server", Q(AccountInfoString(ACCOUNT_SERVER)))
          + "," + KV("server_time", IntegerToString((long)TimeTradeServer() * 1000))
          + "," + KV("account", BuildAccount())
          + "," + KV("terminal", BuildTerminal())
          + "," + KV("positions", positions)
          + "," + KV("deals", deals)
          + "," + KV("ticks", BuildTicks(symbols))
          + "," + KV("symbols", BuildSymbols(symbols)) + "}");
  }

//+------------------------------------------------------------------+
//| Push = emulator.push: the cursor moves only when accepted        |
//+------------------------------------------------------------------+
bool Push(string &answer)
  {
   long newest_deal_msc = 0;
   int status = SignedRequest("POST", PUSH_PATH, "", BuildPush(newest_deal_msc), answer);
   if(status != 200)
     {
      PrintFormat("MT5Guard: push refused (%d): %s", status, answer);
      return(false);
     }
   g_deals_cursor_msc = newest_deal_msc;
   return(true);
  }

//+------------------------------------------------------------------+
//| JSON reading: just enough for the commands answer                |
//+------------------------------------------------------------------+
string JsonRaw(const string obj, const string name)
  {
   int at = StringFind(obj, Q(name) + ":");
   if(at < 0)
     {
      at = StringFind(obj, Q(name) + ": ");
      if(at < 0)
         return("");
     }
   int start = at + StringLen(Q(name)) + 1;
   while(StringGetCharacter(obj, start) == ' ')
      start++;
   int end = start;
   if(StringGetCharacter(obj, start) == '"')
     {
      end = StringFind(obj, "\"", start + 1);
      return(StringSubstr(obj, start + 1, end - start - 1));
     }
   while(end < StringLen(obj) && StringGetCharacter(obj, end) != ',' && StringGetCharacter(obj, end) != '}')
      end++;
   return(StringSubstr(obj, start, end - start));
  }

//+------------------------------------------------------------------+
//| PollCommands = emulator.poll_commands                            |
//+------------------------------------------------------------------+
void PollCommands(const int wait_seconds)
  {
   string answer;
   string query = wait_seconds > 0 ? "?wait=" + IntegerToString(wait_seconds) : "";
   if(SignedRequest("GET", COMMANDS_PATH, query, "", answer) != 200)
      return;
   int list = StringFind(answer, "\"commands\"");
   int from = StringFind(answer, "{", list);
   while(list >= 0 && from >= 0)
     {
      int to = StringFind(answer, "}", from);
      if(to < 0)
         break;
      string command = StringSubstr(answer, from, to - from + 1);
      string result;
      if(ExecuteCommand(command, result))
         PostResult(JsonRaw(command, "id"), result);
      from = StringFind(answer, "{", to);
     }
  }

//+------------------------------------------------------------------+
//| ExecuteCommand = emulator.execute_command: one order_send, never |
//| after the deadline; a position already gone is reported as such |
//+------------------------------------------------------------------+
bool ExecuteCommand(const string command, string &result)
  {
   long deadline = StringToInteger(JsonRaw(command, "deadline"));
   if((long)TimeGMT() * 1000 >= deadline)
     {
      Print("MT5Guard: command ", JsonRaw(command, "id"), " is past its deadline; not executed");
      return(false);
     }
   ulong ticket = (ulong)StringToInteger(JsonRaw(command, "ticket"));
   if(!PositionSelectByTicket(ticket))
     {
      result = "{" + KV("retcode", IntegerToString(TRADE_RETCODE_POSITION_CLOSED)) + "," + KV("deal", "0") + ","
               + KV("order", "0") + "," + KV("volume", "0") + "," + KV("price", "0") + ","
               + KV("comment", Q("Position doesn't exist")) + "}";
      return(true);
     }
   string symbol = PositionGetString(POSITION_SYMBOL);
   bool closing_sell = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY;
   MqlTradeRequest request = {};
   MqlTradeResult reply = {};
   request.action = TRADE_ACTION_DEAL;
   request.position = ticket;
   request.symbol = symbol;
   double volume = StringToDouble(JsonRaw(command, "volume"));
   request.volume = volume > 0 ? volume : PositionGetDouble(POSITION_VOLUME);
   request.type = closing_sell ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
   request.price = closing_sell ? SymbolInfoDouble(symbol, SYMBOL_BID) : SymbolInfoDouble(symbol, SYMBOL_ASK);
   request.deviation = (ulong)StringToInteger(JsonRaw(command, "deviation"));
   request.magic = (ulong)StringToInteger(JsonRaw(command, "magic"));
   request.comment = "MT5Guard close";
   long filling = SymbolInfoInteger(symbol, SYMBOL_FILLING_MODE);
   request.type_filling = (filling & SYMBOL_FILLING_FOK) != 0 ? ORDER_FILLING_FOK
                          : (filling & SYMBOL_FILLING_IOC) != 0 ? ORDER_FILLING_IOC : ORDER_FILLING_RETURN;
   if(!OrderSend(request, reply) && reply.retcode == 0)
      reply.retcode = TRADE_RETCODE_ERROR;
   result = "{" + KV("retcode", IntegerToString(reply.retcode)) + "," + KV("deal", IntegerToString((long)reply.deal))
            + "," + KV("order", IntegerToString((long)reply.order)) + "," + KV("volume", Num(reply.volume, 2))
            + "," + KV("price", Num(reply.price, 8)) + "," + KV("comment", Q(reply.comment)) + "}";
   return(true);
  }

//+------------------------------------------------------------------+
//| PostResult = emulator.post_result                                |
//+------------------------------------------------------------------+
void PostResult(const string command_id, const string result)
  {
   string answer;
   int status = SignedRequest("POST", RESULT_PATH_HEAD + command_id + RESULT_PATH_TAIL, "", result, answer);
   if(status != 200)
      PrintFormat("MT5Guard: result of command %s refused (%d): %s", command_id, status, answer);
  }
//+------------------------------------------------------------------+
